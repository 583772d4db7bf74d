"""``datasite dp policy set|show|delete``, ``dp query``, ``dp cost`` and ``dp budget [raise|reset]``
against a server launched with the CLI (issue 18).

One server per module; the Python client uploads each test's table of people as the data owner,
the command line sets its policy, asks queries as a data scientist, and changes budgets.
"""

import json
import os
import random
import subprocess

import pandas as pd
import pytest

import datasite as sy
from helpers import unique

# A server and CLI users of this module's own (fixtures shared with test_cli_requests).
from test_cli_requests import owner, scientist, site  # noqa: F401

REGIONS = ["north", "south", "east", "west"]
ROWS = 2000


def people(n, seed):
    rng = random.Random(seed)
    return pd.DataFrame({
        "person_id": ["p%d" % i for i in range(n)],
        "age": [rng.randint(18, 90) for _ in range(n)],
        "sex": [rng.choice("FM") for _ in range(n)],
        "region": [rng.choice(REGIONS) for _ in range(n)],
    })


PRIVATE = people(ROWS, seed=1)
MOCK = people(200, seed=2)


def policy(epsilon=5.0, total_epsilon=8.0):
    """The wire form of a policy (what ``--file`` holds)."""
    return {
        "privacy_unit": "person_id",
        "max_rows_per_unit": 1,
        "columns": {
            "age": {"type": "int", "lower": 0, "upper": 100},
            "sex": {"type": "category", "categories": ["F", "M"]},
            "region": {"type": "category", "categories": REGIONS},
        },
        "budget": {
            "per_scientist": {"epsilon": epsilon, "delta": 1e-6},
            "total": {"epsilon": total_epsilon, "delta": 1e-6},
        },
        "queries": ["count", "mean", "quantile"],
    }


def upload(owner):
    """A new dataset with one asset, ``people``; returns (dataset name, asset id)."""
    name = unique("dp")
    dataset = sy.Dataset(name=name, summary="people")
    dataset.add_asset(sy.Asset(name="people", data=PRIVATE, mock=MOCK))
    assert owner.client.upload_dataset(dataset)
    return name, owner.client.datasets[name].assets["people"].id


def dp(person, *args):
    """``datasite dp ARGS --server NAME --token TOKEN`` as ``person``."""
    return person.site.run("dp", *args, "--server", person.site.name, "--token", person.token)


def write_policy(tmp_path, doc):
    path = tmp_path / "policy.json"
    path.write_text(json.dumps(doc))
    return path


def table(result):
    """The rows under the header of a printed table, as lists of cells."""
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith(("VALUE", "GROUP",
                                                                        "QUANTILE", "ASSET")))
    rows = []
    for line in lines[header + 1:]:
        if not line.strip() or ":" in line.split()[0]:
            break
        rows.append(line.split())
    return lines[header].split(), rows


def budget_json(person, asset_id):
    listed = dp(person, "budget", "--asset", asset_id, "--json")
    assert listed.returncode == 0, listed
    return json.loads(listed.stdout)["items"]


def test_owner_sets_a_policy_and_a_scientist_queries(site, owner, scientist, tmp_path):
    name, asset_id = upload(owner)
    refused = dp(scientist, "policy", "set", asset_id, "--file", write_policy(tmp_path, policy()))
    assert refused.returncode == 1 and refused.stderr.startswith("error: "), refused

    set_ = dp(owner, "policy", "set", name + "/people", "--file", write_policy(tmp_path, policy()))
    assert set_.returncode == 0, set_
    assert "Set the DP policy of asset " + asset_id in set_.stdout
    shown = dp(scientist, "policy", "show", asset_id)
    assert shown.returncode == 0, shown
    for text in ("person_id (at most 1 row of each in a query)", "epsilon 5, delta 1e-06",
                 "epsilon 8, delta 1e-06", "count, mean, quantile"):
        assert text in shown.stdout, (text, shown)
    columns = {line.split()[0]: line.split()[1:] for line in shown.stdout.splitlines()
               if line.startswith("  ")}
    assert columns["age"] == ["int", "0", "to", "100"], shown
    assert columns["region"] == ["category", "north,", "south,", "east,", "west"], shown
    as_json = json.loads(dp(scientist, "policy", "show", name + "/people", "--json").stdout)
    assert as_json["columns"]["age"]["upper"] == 100
    assert as_json["budget"]["per_scientist"]["epsilon"] == 5.0

    # A count: near the truth, with its noise and interval, and what is left.
    count = dp(scientist, "query", asset_id, "count", "--epsilon", "1")
    assert count.returncode == 0, count
    header, rows = table(count)
    assert header == ["VALUE", "NOISE_STD", "CI95"], count
    [[value, noise_std, low, high]] = rows
    assert abs(float(value) - ROWS) < 6 * float(noise_std), count
    assert float(low.strip("[,")) < float(value) < float(high.strip("]")), count
    assert "Cost:           epsilon 1, delta" in count.stdout, count
    assert "Left:           epsilon " in count.stdout and " of 5 (delta " in count.stdout, count

    # A filtered, grouped mean: one row per listed region.
    means = dp(scientist, "query", name + "/people", "mean", "--column", "age", "--epsilon", "1",
               "--where", "sex=F", "--group-by", "region")
    assert means.returncode == 0, means
    header, rows = table(means)
    assert header == ["GROUP", "VALUE", "NOISE_STD", "CI95"], means
    truth = PRIVATE[PRIVATE.sex == "F"].groupby("region")["age"].mean()
    assert {row[0] for row in rows} == set(REGIONS), means
    for row in rows:  # within 6 of its own noise standard deviations
        assert abs(float(row[1]) - truth[row[0]]) < 6 * float(row[2]), (row, truth)

    # Quantiles, as JSON; and two values of a column in --where mean either.
    quartiles = dp(scientist, "query", asset_id, "quantile", "--column", "age", "--epsilon", "1",
                   "--quantile", "0.25", "--quantile", "0.75", "--where", "region=north",
                   "--where", "region=south", "--json")
    assert quartiles.returncode == 0, quartiles
    answer = json.loads(quartiles.stdout)
    assert [e["quantile"] for e in answer["estimates"]] == [0.25, 0.75], answer
    assert answer["query"]["where"] == {"region": ["north", "south"]}, answer
    assert answer["charged"] is True and answer["budget"]["epsilon_left"] > 0

    # The mock is free.
    before = budget_json(scientist, asset_id)
    on_mock = dp(scientist, "query", asset_id, "count", "--epsilon", "4", "--mock")
    assert on_mock.returncode == 0, on_mock
    assert "on the mock: not charged" in on_mock.stdout and "Left:" not in on_mock.stdout
    assert budget_json(scientist, asset_id) == before

    # What a query would cost, running nothing.
    cost = dp(scientist, "cost", asset_id, "count", "--epsilon", "1")
    assert cost.returncode == 0, cost
    assert "Cost:           epsilon 1, delta" in cost.stdout and "zCDP rho" in cost.stdout
    assert "You have left:  epsilon " in cost.stdout and "All scientists: epsilon " in cost.stdout
    assert budget_json(scientist, asset_id) == before

    # The budget: spent and left, as a table.
    listed = dp(scientist, "budget")
    assert listed.returncode == 0, listed
    header, rows = table(listed)
    assert header == ["ASSET", "USER", "EPSILON_SPENT", "EPSILON_LEFT", "EPSILON_TOTAL",
                      "DELTA_LEFT"], listed
    [mine] = [row for row in rows if row[:2] == [asset_id, scientist.user["id"]]]
    assert 0 < float(mine[2]) < 3 and 0 < float(mine[3]) < 5 and float(mine[4]) == 5, listed

    # An overspend: refused with what is left, exit 1, and nothing charged.
    over = dp(scientist, "query", asset_id, "count", "--epsilon", "4.9")
    assert over.returncode == 1, over
    assert over.stderr.startswith("error: ") and "left on this asset: epsilon" in over.stderr, over
    assert over.stdout == "", over
    assert budget_json(scientist, asset_id) == before


def test_a_data_owner_raises_resets_and_deletes(site, owner, scientist, tmp_path):
    name, asset_id = upload(owner)
    doc = policy(epsilon=1.0, total_epsilon=2.0)
    set_ = dp(owner, "policy", "set", asset_id, "--file", write_policy(tmp_path, doc))
    assert set_.returncode == 0, set_
    assert dp(scientist, "query", asset_id, "count", "--epsilon", "1").returncode == 0
    spent = dp(scientist, "query", asset_id, "count", "--epsilon", "0.1")
    assert spent.returncode == 1 and "left on this asset: epsilon 0 (delta" in spent.stderr, spent

    raised = dp(owner, "budget", "raise", asset_id, "--user", scientist.email, "--epsilon", "1.5")
    assert raised.returncode == 0, raised
    assert raised.stdout.startswith("Raised the DP budget of " + scientist.user["id"]), raised
    assert "of 1.5 (delta" in raised.stdout, raised
    assert dp(scientist, "query", asset_id, "count", "--epsilon", "0.3").returncode == 0
    lower = dp(owner, "budget", "raise", asset_id, "--user", scientist.user["id"],
               "--epsilon", "1")
    assert lower.returncode == 1 and "not above" in lower.stderr, lower
    mine = dp(scientist, "budget", "raise", asset_id, "--user", "all", "--epsilon", "9")
    assert mine.returncode == 1 and mine.stderr.startswith("error: "), mine

    # The owner sees every scientist's budget and all scientists' together.
    listed = dp(owner, "budget", "--asset", name + "/people")
    assert listed.returncode == 0, listed
    users = {row[1] for row in table(listed)[1]}
    assert {scientist.user["id"], "all"} <= users, listed

    for who in (scientist.user["id"], "all"):
        reset = dp(owner, "budget", "reset", asset_id, "--user", who)
        assert reset.returncode == 0 and reset.stdout.startswith("Reset the DP budget"), reset
    assert dp(scientist, "query", asset_id, "count", "--epsilon", "1").returncode == 0

    assert dp(scientist, "policy", "delete", asset_id).returncode == 1
    deleted = dp(owner, "policy", "delete", asset_id)
    assert deleted.returncode == 0 and "Deleted the DP policy" in deleted.stdout, deleted
    gone = dp(scientist, "query", asset_id, "count", "--epsilon", "0.1")
    assert gone.returncode == 1 and "no DP policy" in gone.stderr, gone
    assert dp(scientist, "policy", "show", asset_id).returncode == 1


def test_the_policy_can_come_from_stdin(site, owner):
    name, asset_id = upload(owner)
    result = subprocess.run(
        [site.binary, "dp", "policy", "set", asset_id, "--file", "-", "--json",
         "--server", site.name, "--token", owner.token],
        input=json.dumps(policy()), capture_output=True, text=True, timeout=60,
        env=dict(os.environ, **site.env),
    )
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["privacy_unit"] == "person_id"


@pytest.mark.parametrize("args, message", [
    (("query", "ID", "count"), "--epsilon is required"),
    (("cost", "ID", "mean", "--column", "age"), "--epsilon is required"),
    (("query", "ID", "count", "--epsilon", "lots"), "--epsilon"),
    (("query", "ID", "median", "--epsilon", "1"), "median"),
    (("query", "ID", "count", "--epsilon", "1", "--where", "region"), "bad --where 'region'"),
    (("query", "ID", "count", "--epsilon", "1", "--where", "=north"), "bad --where '=north'"),
    (("query", "ID", "count", "--epsilon", "1", "--quantile", "0.5"), "--quantile is for a"),
    (("query", "ID", "count", "--epsilon", "nan"), "--epsilon must be a number"),
    (("policy", "set", "ID"), "--file is required"),
    (("policy", "set", "ID", "--file", "/no/such/policy.json"), "cannot read /no/such/policy.json"),
    (("budget", "raise", "ID", "--epsilon", "2"), "--user is required"),
    (("budget", "reset", "ID"), "--user is required"),
])
def test_bad_input_is_a_usage_error_before_connecting(site, scientist, args, message):
    result = dp(scientist, *args)
    assert result.returncode == 2, result
    assert result.stderr.startswith("error: ") and message in result.stderr, result
    assert result.stdout == "", result


def test_a_bad_policy_file_is_a_usage_error(site, owner, tmp_path):
    not_json = tmp_path / "broken.json"
    not_json.write_text('{"privacy_unit": "person_id",')
    result = dp(owner, "policy", "set", "ID", "--file", not_json)
    assert result.returncode == 2 and str(not_json) + " is not JSON: " in result.stderr, result
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    result = dp(owner, "policy", "set", "ID", "--file", listed)
    assert result.returncode == 2 and "must hold one JSON object" in result.stderr, result
    result = dp(owner, "policy", "set", "ID", "--file", tmp_path)
    assert result.returncode == 2 and "is not a regular file" in result.stderr, result


def test_refusals_name_what_is_wrong(site, owner, scientist, tmp_path):
    name, asset_id = upload(owner)
    none_yet = dp(scientist, "query", asset_id, "count", "--epsilon", "0.1")
    assert none_yet.returncode == 1 and "no DP policy" in none_yet.stderr, none_yet
    no_asset = dp(scientist, "query", name + "/nobody", "count", "--epsilon", "0.1")
    assert no_asset.returncode == 1, no_asset
    assert "has no asset 'nobody' (its assets: people)" in no_asset.stderr, no_asset
    # The server's checks of the policy and the query come back as they are.
    doc = policy()
    doc["columns"]["height"] = {"type": "float", "lower": 0, "upper": 3}
    missing = dp(owner, "policy", "set", asset_id, "--file", write_policy(tmp_path, doc))
    assert missing.returncode == 1 and "no column height" in missing.stderr, missing
    assert dp(owner, "policy", "set", asset_id, "--file",
              write_policy(tmp_path, policy())).returncode == 0
    not_allowed = dp(scientist, "query", asset_id, "sum", "--column", "age", "--epsilon", "0.1")
    assert not_allowed.returncode == 1 and "sum" in not_allowed.stderr, not_allowed
    unlisted = dp(scientist, "query", asset_id, "count", "--epsilon", "0.1", "--where",
                  "region=mars")
    assert unlisted.returncode == 1 and "not a listed category" in unlisted.stderr, unlisted
