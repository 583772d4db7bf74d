"""Differential privacy through the Python client against a real server (issue 18).

A data scientist's whole DP session: the owner sets a policy on a table of people; the scientist
asks counts, grouped means and quantiles, answered from the private data with noise and charged to
a budget; sees the budget; is refused clearly for an overspend, an unlisted column, a query kind
the policy does not allow, and on an asset without a policy; queries the mock for free. Then the
ledger under concurrent clients racing for the last of a budget, and a data owner raising and
resetting budgets (audited). One server for the module; each test uploads its own dataset.
"""

import concurrent.futures
import random

import pandas as pd
import pytest

import datasite as sy
from code_helpers import make_code_actors
from helpers import unique

REGIONS = ["north", "south", "east", "west"]


def people(n, seed):
    rng = random.Random(seed)
    return pd.DataFrame({
        "person_id": ["p%d" % i for i in range(n)],
        "age": [rng.randint(18, 90) for _ in range(n)],
        "income": [round(rng.uniform(0, 200000), 2) for _ in range(n)],
        "sex": [rng.choice("FM") for _ in range(n)],
        "region": [rng.choice(REGIONS) for _ in range(n)],
        "city": [rng.choice(["Oslo", "Lima", "Pune"]) if i else "Tiny" for i in range(n)],
    })


PRIVATE = people(4000, seed=1)
MOCK = people(300, seed=2)


def policy(**overrides):
    args = dict(
        columns={"age": (0, 100), "income": (0.0, 200000.0), "sex": ["F", "M"],
                 "region": REGIONS, "city": None},
        epsilon=5.0, delta=1e-6, total_epsilon=8.0, privacy_unit="person_id",
        queries=["count", "mean", "quantile", "variance"],
    )
    args.update(overrides)
    return sy.DPPolicy(**args)


@pytest.fixture(scope="module")
def actors(module_server):
    return make_code_actors(module_server.port)


def upload(owner, data=PRIVATE, mock=MOCK):
    name = unique("people")
    dataset = sy.Dataset(name=name, summary="people")
    dataset.add_asset(sy.Asset(name="people", data=data, mock=mock))
    assert owner.upload_dataset(dataset)
    return name


def asset_of(client, name):
    return client.datasets[name].assets["people"]


def test_a_scientists_whole_dp_session(actors):
    owner, ds = actors["owner"].client, actors["scientist"].client
    name = upload(owner)
    # No policy yet: no DP queries, said so.
    with pytest.raises(sy.FailedPreconditionError, match="no DP policy"):
        asset_of(ds, name).dp.count(epsilon=0.1)
    set_ = asset_of(owner, name).set_dp_policy(policy())
    assert isinstance(set_, sy.SyftSuccess), set_
    people_ = asset_of(ds, name)
    assert people_.dp_policy.epsilon == 5.0 and "income" in people_.dp_policy.columns

    # A count: near the truth, with the noise it says.
    count = people_.dp.count(epsilon=1.0)
    assert abs(count.value - len(PRIVATE)) < 6 * count.noise_std, count
    lo, hi = count.ci95
    assert lo < count.value < hi
    # A grouped, filtered mean: every listed region, each near its true mean.
    means = people_.dp.mean("age", epsilon=1.0, where={"sex": "F"}, group_by="region")
    truth = PRIVATE[PRIVATE.sex == "F"].groupby("region")["age"].mean()
    assert set(means.groups) == set(REGIONS)
    for region, value in means.groups.items():
        assert abs(value - truth[region]) < 3, (region, value, truth[region])
    frame = means.to_pandas()
    assert sorted(frame["group"]) == sorted(REGIONS) and frame["value"].notna().all(), frame
    # Quantiles of one histogram.
    quartiles = people_.dp.quantile("age", epsilon=1.0, q=[0.25, 0.5, 0.75])
    true_q = PRIVATE["age"].quantile([0.25, 0.5, 0.75]).tolist()
    for got, want in zip(quartiles.value, true_q):
        assert abs(got - want) <= 3, (quartiles.value, true_q)

    # The budget: three queries of epsilon 1 spent less than 3 in zCDP terms, and some is left.
    budget = people_.dp.budget
    mine = [b for b in budget if b["scope"] == "scientist"][0]
    assert 0 < mine["epsilon_spent"] < 3.0 and mine["epsilon_left"] > 0, mine
    assert mine["epsilon_total"] == pytest.approx(5.0, abs=1e-3)
    cost = people_.dp.cost("count", epsilon=1.0)
    assert cost["rho"] > 0 and cost["budget"]["epsilon_left"] == pytest.approx(
        mine["epsilon_left"], abs=1e-6)
    # The mock is free, and answered the same way.
    on_mock = people_.dp.count(epsilon=4.0, mock=True)
    assert on_mock.mock and abs(on_mock.value - len(MOCK)) < 6 * on_mock.noise_std
    assert people_.dp.budget[0]["rho_spent"] == budget[0]["rho_spent"]

    # Refusals, each saying why.
    with pytest.raises(sy.PermissionDeniedError, match="'person_id' is not queryable"):
        people_.dp.mean("person_id", epsilon=0.1)
    with pytest.raises(sy.PermissionDeniedError, match="sum"):
        people_.dp.sum("income", epsilon=0.1)
    with pytest.raises(sy.PermissionDeniedError, match="not a listed category"):
        people_.dp.count(epsilon=0.1, where={"region": "mars"})
    with pytest.raises(sy.PermissionDeniedError, match="delta"):
        people_.dp.count(epsilon=0.1, group_by="city")
    with pytest.raises(sy.InvalidArgumentError, match="epsilon"):
        people_.dp.count(epsilon=0)
    # Overspend: refused with what is left, and nothing is charged.
    left = people_.dp.budget
    with pytest.raises(sy.FailedPreconditionError, match="left on this asset: epsilon"):
        people_.dp.count(epsilon=4.9)
    assert people_.dp.budget == left
    # A scientist sets no policy.
    with pytest.raises(sy.PermissionDeniedError):
        people_.set_dp_policy(policy())


def test_unlisted_keys_come_out_only_through_partition_selection(actors):
    owner, ds = actors["owner"].client, actors["scientist"].client
    name = upload(owner)
    asset_of(owner, name).set_dp_policy(policy())
    cities = asset_of(ds, name).dp.count(epsilon=1.0, delta=1e-7, group_by="city")
    assert set(cities.groups) <= {"Oslo", "Lima", "Pune"}, cities.groups  # never "Tiny" (1 row)
    assert len(cities.groups) == 3
    # Sorted, not in the order the file first names them (which told the first row's city).
    assert [e["group"] for e in cities.estimates] == ["Lima", "Oslo", "Pune"]


def test_a_malformed_mock_flag_is_a_clear_error(actors, api):
    owner, ds = actors["owner"].client, actors["scientist"].client
    name = upload(owner)
    asset_of(owner, name).set_dp_policy(policy())
    asset_id = asset_of(ds, name).id
    for mock in (1, "true", None):
        with pytest.raises(sy.InvalidArgumentError, match="'mock' is true or false"):
            ds._transport.call("dp_query", {"id": asset_id},
                               body={"query": "count", "epsilon": 0.1, "mock": mock})


def test_concurrent_clients_never_overspend(actors, module_server):
    # Budget: one scientist's total is 0.5 epsilon; each query asks 0.1. However many race,
    # exactly as many land as the ledger can pay for (zCDP: more than 5 of 0.1 fit in 0.5).
    owner, ds = actors["owner"].client, actors["scientist2"].client
    name = upload(owner)
    asset_of(owner, name).set_dp_policy(policy(epsilon=0.5, total_epsilon=0.5))
    target = asset_of(ds, name)
    affordable = target.dp.cost("count", epsilon=0.1)
    per_query = affordable["rho"]
    total_rho = affordable["budget"]["rho_total"]
    expected = int(total_rho // per_query + 1e-9)

    def ask(_):
        try:
            target.dp.count(epsilon=0.1)
            return "ok"
        except sy.FailedPreconditionError:
            return "refused"

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(ask, range(expected + 24)))
    assert outcomes.count("ok") == expected, (outcomes.count("ok"), expected)
    spent = [b for b in target.dp.budget if b["scope"] == "scientist"][0]
    assert spent["rho_spent"] <= spent["rho_total"]


def test_a_data_owner_raises_and_resets_budgets_audited(actors):
    owner, ds = actors["owner"].client, actors["scientist"].client
    name = upload(owner)
    asset = asset_of(owner, name)
    asset.set_dp_policy(policy(epsilon=1.0, total_epsilon=2.0))
    mine = asset_of(ds, name)
    mine.dp.count(epsilon=1.0)  # all of it
    with pytest.raises(sy.FailedPreconditionError):
        mine.dp.count(epsilon=0.1)
    user_id = actors["scientist"].user["id"]
    raised = owner.dp.raise_budget(asset, epsilon=1.5, user=user_id)
    assert raised["epsilon_total"] == pytest.approx(1.5, abs=1e-3)
    mine.dp.count(epsilon=0.3)
    with pytest.raises(sy.InvalidArgumentError, match="not above"):
        owner.dp.raise_budget(asset, epsilon=1.0, user=user_id)
    owner.dp.reset_budget(asset, user=user_id)
    owner.dp.reset_budget(asset)  # all scientists' total too
    mine.dp.count(epsilon=1.0)
    with pytest.raises(sy.PermissionDeniedError):
        ds.dp.raise_budget(asset.id, epsilon=9.0, user=user_id)
    entries = [e for e in owner.audit.all() if asset.id in str(e.get("target"))]
    actions = {e["action"] for e in entries}
    assert {"dp.policy_set", "dp.query", "dp.budget_raised", "dp.budget_reset"} <= actions, actions
