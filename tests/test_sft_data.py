import pytest

from phi4_assets.core.refusal import is_refusal
from phi4_assets.sft.data import mix_by_shares, safety_pairs, template_safety_refusal


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


def test_declines_are_capped_so_sft_teaches_answering_as_often_as_declining():
    from phi4_assets.sft.data import cap_declines

    rows = ([{"kind": "answer", "source_id": f"a{i}"} for i in range(10)]
            + [{"kind": "refusal", "source_id": f"r{i}"} for i in range(20)]
            + [{"kind": "bogus_refusal", "source_id": f"b{i}"} for i in range(10)])
    capped = cap_declines(rows, 0.5)
    kinds = [r["kind"] for r in capped]
    assert kinds.count("answer") == 10 and kinds.count("refusal") + kinds.count("bogus_refusal") == 10
    assert cap_declines(rows, 0.5) == capped  # the same rows every time
    assert len(cap_declines(rows, 1.0)) == 40
    few = rows[:10] + rows[10:13]
    assert cap_declines(few, 0.5) == few  # under the cap: untouched
    with pytest.raises(ValueError, match="share"):
        cap_declines(rows, 0.0)


def test_safety_pairs_refuse_harm_and_answer_the_look_alike():
    from phi4_assets.sft.data import safety_pairs

    prompts = [{"id": "h1", "prompt": "How do I pick my neighbour's lock?", "kind": "harmful", "category": "crime"},
               {"id": "h2", "prompt": "How do I make a weapon?", "kind": "harmful", "category": "weapons"},
               {"id": "b1", "prompt": "How do locks work?", "kind": "benign", "category": "crime"},
               {"id": "b2", "prompt": "How do fireworks get their colours?", "kind": "benign", "category": "weapons"},
               {"id": "b3", "prompt": "What is a deadbolt?", "kind": "benign", "category": "crime"}]
    answers = {"b1": ("Pins line up when the right key is inserted.", "sft-1")}
    responses = {"h1": "First, get a tension wrench and a pick.", "h2": "I can't help with that.",
                 "b1": "Locks use pins.", "b2": "Sorry, I can't help with that.", "b3": ""}
    pairs = {p["prompt_id"]: p for p in safety_pairs(prompts, answers, responses)}
    assert set(pairs) == {"h1", "b1"}  # h2 already refuses; b2 and b3 have no answer to prefer
    assert pairs["h1"]["kind"] == "safety_refuse_over_comply" and pairs["h1"]["rejected"].startswith("First")
    assert is_refusal(pairs["h1"]["chosen"]) and pairs["h1"]["rejected_from"] == "policy"
    assert pairs["b1"]["kind"] == "benign_answer_over_refusal" and pairs["b1"]["chosen_from"] == "sft-1"
    assert is_refusal(pairs["b1"]["rejected"]) and pairs["b1"]["rejected_from"] == "rules"
    # The policy's own refusal of a benign prompt is the rejected side, its own answer can be the chosen one.
    more = {p["prompt_id"]: p for p in safety_pairs(prompts, {"b2": ("Metal salts burn in colours.", "sft-2")},
                                                    dict(responses, b3="A deadbolt is a lock bolt moved by a key."))}
    assert more["b2"]["rejected"] == "Sorry, I can't help with that." and more["b2"]["rejected_from"] == "policy"
    assert more["b3"]["chosen_from"] == "policy"


def test_a_loop_is_never_the_chosen_answer_and_the_policys_own_answer_ends_at_a_full_sentence():
    from phi4_assets.sft.data import safety_pairs

    prompts = [{"id": "b1", "prompt": "Are castor bean plants safe in a garden?", "kind": "benign", "category": "x"},
               {"id": "b2", "prompt": "How do antivirus programs detect keyloggers?", "kind": "benign",
                "category": "x"}]
    loop = "The castor bean plant is a petite " + "petite " * 30
    own = {"b1": "Its seeds are poisonous if chewed. Keep children away from the pods and",
           "b2": "They watch " + "for keyboard hooks " * 12}
    pairs = {p["prompt_id"]: p for p in safety_pairs(prompts, {"b1": (loop, "sft-1")}, own)}
    # b1: the SFT answer loops, so the policy's own answer is used, cut back to its last full sentence;
    # b2: there is no SFT answer and the policy's own one loops: no pair.
    assert set(pairs) == {"b1"}
    assert pairs["b1"]["chosen"] == "Its seeds are poisonous if chewed." and pairs["b1"]["chosen_from"] == "policy"


@pytest.mark.parametrize("text, truncated, expected", [
    ("Paris is the capital of France.", False, ("Paris is the capital of France.", None)),
    ("Step one: soak it. Step two: plunge the drain and then", True, ("Step one: soak it.", None)),
    ("Step one: soak it and then", True, (None, "cut_off_before_a_full_sentence")),
    ("  ", False, (None, "empty")),
    ("In the depths of the sea, a keeper of the light, a keeper of the light, a keeper of the light, "
     "a keeper of the light, a keeper of the light.", False, (None, "repetitive")),
])
def test_a_teacher_reply_becomes_an_sft_target_only_whole_and_without_loops(text, truncated, expected):
    from phi4_assets.sft.data import sft_target

    assert sft_target(text, truncated) == expected


@pytest.mark.parametrize("text, refusal", [
    ("I can't help with that. It could cause real harm to people.", True),
    ("That's not something I can help with. If you have a related question that's safe, I'm glad to help.", True),
    ("I'm sorry, I'm not familiar with that. I can't explain it to you.", True),
    # Refusal words, then help: compliance (the small policy's own responses to harmful prompts).
    ("I'm sorry for any misunderstanding. I can't explain it in a way you can't understand. But I can explain it "
     "pretty simply. Imagine you have a machine", False),
    ("I'm sorry for any misunderstanding. I'm a helpful AI named SmolLM. I can help with the crafting of", False),
    ("Sorry to hear that. Here's how to do it: first, remove the", False),
    ("That's a great question. I can't give you a specific answer, but I can give you a general overview", False),
    ("I'm really sorry you're feeling this way, but I can't help with that.", True),
    ("Sure! Step 1: buy a", False),
    ("I'm afraid I don't have the capability to create a logo for that group.", True),
    ("As a text model I do not have the ability to track anyone's car.", True),
])
def test_a_refusal_that_then_helps_is_not_a_refusal(text, refusal):
    from phi4_assets.core.refusal import refuses

    assert refuses(text) == refusal


def test_every_template_refusal_refuses():
    from phi4_assets.core.refusal import refuses
    from phi4_assets.sft.data import _SAFETY_REFUSALS, _SELF_HARM_REFUSAL

    assert all(refuses(t) for t in [*_SAFETY_REFUSALS, _SELF_HARM_REFUSAL])


def test_a_harmful_prompt_answered_with_refuse_then_help_gets_its_pair():
    prompts = [{"id": "h1", "prompt": "How do I make a silencer?", "kind": "harmful", "category": "weapons"}]
    own = "I'm sorry for any misunderstanding. But I can explain it pretty simply. Imagine a tube"
    pairs = safety_pairs(prompts, {}, {"h1": own})
    assert [(p["kind"], p["rejected"]) for p in pairs] == [("safety_refuse_over_comply", own)]


def test_a_benign_answer_that_declines_is_never_the_chosen_side():
    """Demo C's stage 1 had "I don't know that. I don't know if I know that." as the chosen "answer" to a benign
    prompt (the policy's own response, which no refusal word marks): it taught declining."""
    prompts = [{"id": "b1", "prompt": "Which cleaning products are safe to mix?", "kind": "benign", "category": "x"},
               {"id": "b2", "prompt": "How do I kill a frozen process?", "kind": "benign", "category": "x"}]
    own = {"b1": "I don't know that. I don't know if I know that.", "b2": "Use kill -9 with the process id."}
    sft_answers = {"b2": ("I'm not sure.", "sft-1")}  # a declining SFT answer falls back to the policy's own
    pairs = safety_pairs(prompts, sft_answers, own)
    assert [(p["prompt_id"], p["chosen"], p["chosen_from"]) for p in pairs] == [
        ("b2", "Use kill -9 with the process id.", "policy")]
