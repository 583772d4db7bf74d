"""Every HTTP route the Python client calls, in one table.

The integration tests check this table against the server's OpenAPI document, so a route the client
uses can never silently disappear from the server. Keys are the names the client code uses; values
are ``(method, path)`` with ``{id}`` standing for a path parameter.
"""

API_PREFIX = "/api/v1"

ROUTES = {
    "metadata": ("GET", "/api/v1/metadata"),
    "openapi": ("GET", "/api/v1/openapi.json"),
    "auth_login": ("POST", "/api/v1/auth/login"),
    "auth_guest": ("POST", "/api/v1/auth/guest"),
    "auth_logout": ("POST", "/api/v1/auth/logout"),
    "auth_register": ("POST", "/api/v1/auth/register"),
    "account_get": ("GET", "/api/v1/account"),
    "account_update": ("PATCH", "/api/v1/account"),
    "account_password": ("POST", "/api/v1/account/password"),
    "account_quota": ("GET", "/api/v1/account/quota"),
    "users_list": ("GET", "/api/v1/users"),
    "users_create": ("POST", "/api/v1/users"),
    "user_get": ("GET", "/api/v1/users/{id}"),
    "user_update": ("PATCH", "/api/v1/users/{id}"),
    "user_delete": ("DELETE", "/api/v1/users/{id}"),
    "settings_get": ("GET", "/api/v1/settings"),
    "settings_update": ("PATCH", "/api/v1/settings"),
    "settings_welcome": ("GET", "/api/v1/settings/welcome"),
    "blobs_upload": ("POST", "/api/v1/blobs"),
    "blob_get": ("GET", "/api/v1/blobs/{id}"),
    "blob_delete": ("DELETE", "/api/v1/blobs/{id}"),
    "blob_mock": ("POST", "/api/v1/blobs/{id}/mock"),
    "datasets_create": ("POST", "/api/v1/datasets"),
    "datasets_list": ("GET", "/api/v1/datasets"),
    "dataset_get": ("GET", "/api/v1/datasets/{id}"),
    "dataset_update": ("PATCH", "/api/v1/datasets/{id}"),
    "dataset_delete": ("DELETE", "/api/v1/datasets/{id}"),
    "asset_mock": ("GET", "/api/v1/datasets/{id}/assets/{name}/mock"),
    "asset_data": ("GET", "/api/v1/datasets/{id}/assets/{name}/data"),
    "asset_mock_regenerate": ("POST", "/api/v1/datasets/{id}/assets/{name}/mock"),
    "code_submit": ("POST", "/api/v1/code"),
    "code_list": ("GET", "/api/v1/code"),
    "code_get": ("GET", "/api/v1/code/{id}"),
    "code_run": ("POST", "/api/v1/code/{id}/run"),
    "requests_create": ("POST", "/api/v1/requests"),
    "requests_list": ("GET", "/api/v1/requests"),
    "request_get": ("GET", "/api/v1/requests/{id}"),
    "request_approve": ("POST", "/api/v1/requests/{id}/approve"),
    "request_deny": ("POST", "/api/v1/requests/{id}/deny"),
    "jobs_list": ("GET", "/api/v1/jobs"),
    "job_get": ("GET", "/api/v1/jobs/{id}"),
    "job_result": ("GET", "/api/v1/jobs/{id}/result"),
    "job_logs": ("GET", "/api/v1/jobs/{id}/logs"),
    "job_kill": ("POST", "/api/v1/jobs/{id}/kill"),
    "job_release": ("POST", "/api/v1/jobs/{id}/release"),
}
