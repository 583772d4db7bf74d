"""The deploy tests skip where their tools are missing (kubectl 1.27+, podman, mmdebstrap). A run in
which every test skipped exits 77, which ctest shows as skipped (SKIP_RETURN_CODE), not as passed."""


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or exitstatus != 0:
        return
    stats = reporter.stats
    ran = sum(len(stats.get(k, [])) for k in ("passed", "failed", "error", "xpassed", "xfailed"))
    if ran == 0 and stats.get("skipped"):
        session.exitstatus = 77
