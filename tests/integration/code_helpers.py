"""Helpers of the code, request and job tests: a dataset with a private and a mock table, a second
data scientist, and waiting for a job to reach a state.
"""

import time

import pandas as pd

import datasite as sy
from dataset_helpers import Actor, make_actors
from helpers import PASSWORD, Api, client_for, unique, unique_email

# The private table and its mock: the same columns, different values, so a result tells which one
# the code ran on.
PRIVATE = pd.DataFrame({"age": [31, 42, 57, 64, 23], "name": ["ann", "bob", "cyd", "dee", "eve"]})
MOCK = pd.DataFrame({"age": [20, 20, 20], "name": ["x", "y", "z"]})
WAIT_SECONDS = 60


def make_code_actors(port):
    """``make_actors`` plus a second data scientist, ``scientist2``."""
    actors = make_actors(port)
    api = Api(port)
    user = api.create_user(
        actors["admin"].token, role="data_scientist", email=unique_email("scientist2")
    )
    token = api.login(user["email"], PASSWORD)
    actors["scientist2"] = Actor("scientist2", token, client_for(port, token), user)
    return actors


def upload_people(owner_client, name=None):
    """Uploads a dataset with one CSV asset, ``people`` (PRIVATE, mock MOCK); returns its name."""
    name = name or unique("people")
    dataset = sy.Dataset(name=name, summary="people and their ages")
    dataset.add_asset(sy.Asset(name="people", data=PRIVATE, mock=MOCK))
    assert owner_client.upload_dataset(dataset)
    return name


def asset_of(client, dataset_name, asset_name="people"):
    """The asset as ``client`` reads it from the server."""
    return client.datasets[dataset_name].assets[asset_name]


def wait_for_status(job, statuses, seconds=WAIT_SECONDS):
    """Refreshes ``job`` until its status is one of ``statuses``; fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while job.refresh().status not in statuses:
        assert time.monotonic() < deadline, "job still {} after {} s: {!r}".format(
            job.status, seconds, job
        )
        time.sleep(0.05)
    return job
