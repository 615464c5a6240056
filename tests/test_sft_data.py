from phi4_assets.sft_data import is_refusal, mix_by_shares, template_safety_refusal


def rows(prefix, n):
    return [{"id": f"{prefix}{i}"} for i in range(n)]


def test_mix_follows_the_shares_up_to_the_scarcest_source():
    picked = mix_by_shares({"a": rows("a", 10), "b": rows("b", 4)}, {"a": 0.5, "b": 0.5})
    assert (len(picked["a"]), len(picked["b"])) == (4, 4)
    picked = mix_by_shares({"chat": rows("c", 100), "hall": rows("h", 40), "safe": rows("s", 100)},
                           {"chat": 0.45, "hall": 0.4, "safe": 0.15})
    assert (len(picked["chat"]), len(picked["hall"]), len(picked["safe"])) == (45, 40, 15)
    again = mix_by_shares({"chat": rows("c", 100), "hall": rows("h", 40), "safe": rows("s", 100)},
                          {"chat": 0.45, "hall": 0.4, "safe": 0.15})
    assert picked == again  # stable


def test_zero_share_and_empty_sources_are_left_out():
    picked = mix_by_shares({"a": rows("a", 5), "b": [], "c": rows("c", 5)}, {"a": 1, "b": 1, "c": 0})
    assert (len(picked["a"]), len(picked["b"]), len(picked["c"])) == (5, 0, 0)


def test_safety_refusals_are_refusals():
    for i in range(20):
        for category in ("weapons", "self_harm", "fraud_scams"):
            assert is_refusal(template_safety_refusal(f"p{i}", category))
    assert not is_refusal("Sure, here is how to kill a stuck Python process: use kill -9 PID.")
