"""End to end through the Dagster UI, as a person uses it: `dagster dev` on loopback (tiny profile, throwaway
state), headless Debian Chromium. The global asset lineage shows every group; the upstream lineage of
`dpo2_model` reaches the seed asset `trivia_seeds`; `chat_prompts` is materialized by clicking
"Materialize" on its page and the run succeeds. Screenshots go to test-artifacts/ui/.

Needs Debian's chromium and chromium-driver and the selenium package: `make test` installs them."""

from __future__ import annotations

import re
import time
from collections import deque
from pathlib import Path

import pytest
from ui_harness import REPO, chromium, dagster_dev, require_browser, wait_for

pytestmark = pytest.mark.slow

ARTIFACTS = REPO / "test-artifacts" / "ui"
GROUPS = ("sources", "hallucination", "sft", "pts", "judge", "evaluation")
SEED, TARGET, SMALL = "trivia_seeds", "dpo2_model", "chat_prompts"
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}

ASSET_NODES = "{ assetNodes { assetKey { path } groupName dependencyKeys { path } } }"
RUNS = "{ runsOrError { __typename ... on Runs { results { runId status assetSelection { path } } } } }"
RUN_ERRORS = """query($runId: ID!) { logsForRun(runId: $runId) { __typename
  ... on EventConnection { events { __typename ... on MessageEvent { message level } } } } }"""
LATEST = """{ assetOrError(assetKey: {path: ["chat_prompts"]}) { __typename ... on Asset {
  assetMaterializations(limit: 1) { runId metadataEntries { label ... on IntMetadataEntry { intValue } } } } } }"""


def _upstream_path(deps: dict[str, list[str]], start: str, goal: str) -> list[str] | None:
    """A dependency path from ``goal`` down to ``start`` (breadth first over upstream keys)."""
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        key = queue.popleft()
        if key == goal:
            path = [key]
            while parent[path[-1]] is not None:
                path.append(parent[path[-1]])
            return path  # goal ... start: seed first, downstream last
        for dep in deps.get(key, []):
            if dep not in parent:
                parent[dep] = key
                queue.append(dep)
    return None


def test_dagster_ui_end_to_end(tmp_path, capsys):
    require_browser()
    from selenium.webdriver.common.by import By

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("*.png"):
        old.unlink()
    shots: list[str] = []
    started = time.monotonic()

    with dagster_dev(tmp_path) as server, chromium(tmp_path) as driver:
        base = server.base_url

        def shot(name: str) -> None:
            dismiss_popups()
            path = ARTIFACTS / name
            driver.save_screenshot(str(path))
            shots.append(str(path))
            print(f"screenshot: {path}")

        def dismiss_popups() -> None:
            # A fresh browser profile gets Dagster's "Join the Dagster community" dialog once.
            for button in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
                if button.is_displayed():
                    button.click()

        def ui_wait(check, timeout_s: float, what: str):
            def polled():
                dismiss_popups()
                return check()

            def on_timeout() -> str:
                shot(f"failed-{re.sub(r'[^a-z0-9]+', '-', what.lower())[:40]}.png")
                return f" on {driver.current_url}{server.log_tail(2000)}"

            return wait_for(polled, timeout_s, what, on_timeout=on_timeout)

        def click(xpath: str, what: str) -> None:
            """Click like a person: a dialog in the way is dismissed first."""
            from selenium.common.exceptions import ElementClickInterceptedException

            def clicked():
                try:
                    driver.find_element(By.XPATH, xpath).click()
                    return True
                except ElementClickInterceptedException:
                    return False

            ui_wait(clicked, 20, f"clicking {what}")

        def groups_shown(in_graph: bool) -> set[str]:
            """Group names drawn as group boxes on the lineage graph, or listed in the sidebar."""
            if in_graph:
                return {g for g in GROUPS if driver.find_elements(
                    By.XPATH, f"//*[local-name()='foreignObject']//*[normalize-space(text())='{g}']")}
            return {g for g in GROUPS if driver.find_elements(By.CSS_SELECTOR, f"[title='{g}']")}

        def sidebar_titles() -> set[str]:
            return {e.get_attribute("title") for e in driver.find_elements(By.CSS_SELECTOR, "[title]")}

        def body_text() -> str:
            return driver.find_element(By.TAG_NAME, "body").text

        # --- what the server itself says: every group, and the dependency chain seed -> dpo2_model
        nodes = server.graphql(ASSET_NODES)["assetNodes"]
        groups = {n["groupName"] for n in nodes}
        assert set(GROUPS) <= groups, f"groups in the definitions: {sorted(groups)}"
        deps = {"/".join(n["assetKey"]["path"]): ["/".join(d["path"]) for d in n["dependencyKeys"]] for n in nodes}
        chain = _upstream_path(deps, TARGET, SEED)
        assert chain, f"{SEED} is not upstream of {TARGET}: {deps.get(TARGET)}"
        via_dpo1 = _upstream_path(deps, "dpo1_model", SEED)
        assert "dpo1_model" in deps[TARGET] and via_dpo1, f"{TARGET} does not build on dpo1_model <- ... <- {SEED}"
        print("lineage (GraphQL):", " -> ".join(chain), "| via stage 1:", " -> ".join([*via_dpo1, TARGET]))

        # --- the global asset lineage page shows every group, in the sidebar and in the graph
        driver.get(f"{base}/asset-groups")

        def groups_in_graph():
            return groups_shown(in_graph=True) == set(GROUPS) and groups_shown(in_graph=False) == set(GROUPS)

        ui_wait(groups_in_graph, 60, "every asset group on the global lineage graph")
        # The first visit (a fresh instance) opens "Join the Dagster community" after a second: skip it,
        # as a person would; Dagster records that, so later pages do not show it again.
        skip = "//button[normalize-space()='Skip']"
        nux_seen = lambda: not server.graphql("{ shouldShowNux }")["shouldShowNux"]  # noqa: E731
        wait_for(lambda: driver.find_elements(By.XPATH, skip) or nux_seen(), 5, "the community dialog",
                 interval_s=0.2, soft=True)
        dismiss_popups()
        wait_for(lambda: not [b for b in driver.find_elements(By.XPATH, skip) if b.is_displayed()], 10,
                 "the community dialog to close")
        assert "Global asset lineage" in body_text()
        time.sleep(0.5)  # let the edges finish drawing
        shot("asset-graph.png")

        # --- the upstream lineage of dpo2_model: type the selection into the graph's search box, as a person
        # would; the graph keeps the five groups it builds on (not evaluation), and the sidebar's sources
        # group holds the seed asset while judge holds dpo2_model.
        search = driver.find_element(By.XPATH, "//pre[contains(text(),'Search and filter assets')]"
                                               "/ancestor::div[contains(@class,'CodeMirror')][last()]")
        search.click()
        driver.switch_to.active_element.send_keys(f'+key:"{TARGET}"\n')
        upstream_groups = set(GROUPS) - {"evaluation"}

        def selection_applied():
            return groups_shown(in_graph=True) == upstream_groups == groups_shown(in_graph=False)

        ui_wait(selection_applied, 30, f"the lineage graph filtered to +key:\"{TARGET}\"")
        for group in ("sources", "judge"):
            click(f"//*[@title='{group}']/ancestor::*[.//*[@aria-label='arrow_drop_down']][1]"
                  f"//*[@aria-label='arrow_drop_down']/ancestor::button[1]", f"the {group} group in the sidebar")
        ui_wait(lambda: {SEED, TARGET, "judge_dpo_pairs"} <= sidebar_titles(), 20,
                f"{SEED} and {TARGET} listed under the upstream selection")
        listed = sidebar_titles()
        # Only what dpo2_model builds on: not the held-out eval sets, not the DPO-stage-2-only ablation.
        assert not listed & {"eval_sets", "dpo2_only_model", "stage_evaluations"}, sorted(listed)
        time.sleep(0.5)
        shot("lineage-dpo2_model.png")

        # --- materialize chat_prompts from its asset page
        assert server.graphql(RUNS)["runsOrError"]["results"] == [], "the fresh instance already has runs"
        driver.get(f"{base}/assets/{SMALL}")
        ui_wait(lambda: "Never materialized" in body_text(), 60, f"{SMALL}'s page (never materialized yet)")
        click("//button[normalize-space()='Materialize']", "Materialize")
        clicked = time.monotonic()

        def launched():
            runs = server.graphql(RUNS)["runsOrError"]["results"]
            return runs[0] if runs else None

        run = wait_for(launched, 30, "a run launched by the Materialize button")
        run_id = run["runId"]
        assert [k["path"] for k in run["assetSelection"] or []] == [[SMALL]], run
        toast = re.search(r"Launched run ([0-9a-f]{8})", body_text())
        if toast:  # the toast lasts a few seconds; when seen it names this run
            assert run_id.startswith(toast.group(1)), (toast.group(0), run_id)

        def finished():
            for r in server.graphql(RUNS)["runsOrError"]["results"]:
                if r["runId"] == run_id and r["status"] in TERMINAL:
                    return r["status"]
            return None

        status = wait_for(finished, 150, f"run {run_id} to finish", interval_s=1.0, on_timeout=server.log_tail)
        if status != "SUCCESS":
            events = server.graphql(RUN_ERRORS, {"runId": run_id})["logsForRun"].get("events", [])
            errors = [e.get("message") for e in events if e.get("level") in ("ERROR", "CRITICAL")]
            pytest.fail(f"run {run_id} of {SMALL} ended {status}: {errors[-5:]}{server.log_tail()}",
                        pytrace=False)
        print(f"run {run_id} ({SMALL}) succeeded {time.monotonic() - clicked:.1f} s after the click")

        latest = server.graphql(LATEST)["assetOrError"]["assetMaterializations"]
        assert latest and latest[0]["runId"] == run_id, latest
        row_count = next(e["intValue"] for e in latest[0]["metadataEntries"] if e["label"] == "dagster/row_count")
        assert row_count > 0

        # The asset page, reloaded, shows the materialization and its metadata.
        driver.get(f"{base}/assets/{SMALL}")
        ui_wait(lambda: "Never materialized" not in (t := body_text()) and "Row count" in t, 60, f"{SMALL}'s page showing the materialization")
        assert re.search(rf"Row count\s+{row_count}\b", body_text()), body_text()[:1500]
        shot("materialized.png")

        # The run's page says it succeeded.
        driver.get(f"{base}/runs/{run_id}")
        ui_wait(lambda: "Success" in body_text() and SMALL in body_text(), 60, f"run {run_id}'s page")
        shot("run.png")

    with capsys.disabled():  # shown by a plain `make test` (pytest -q) too
        print(f"\nDagster UI end to end: {time.monotonic() - started:.1f} s; screenshots: {', '.join(shots)}")


def test_a_missing_browser_skips_with_the_reason_unless_ci_requires_it(monkeypatch):
    import ui_harness

    monkeypatch.setattr(ui_harness, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.delenv("PHI4_REQUIRE_UI_TEST", raising=False)
    with pytest.raises(pytest.skip.Exception, match="needs a browser.*chromium not found"):
        ui_harness.require_browser()
    monkeypatch.setenv("PHI4_REQUIRE_UI_TEST", "1")
    with pytest.raises(pytest.fail.Exception, match="chromium not found"):
        ui_harness.require_browser()
