import pytest

from phi4_assets.core.text import last_full_sentence, loops, repetition


def test_repetition_is_the_share_of_repeated_word_trigrams():
    assert repetition("a b c a b c") == pytest.approx(1 - 3 / 4)  # (a b c) (b c a) (c a b) (a b c)
    assert repetition("one two three four") == 0.0
    assert repetition("too short") == 0.0


@pytest.mark.parametrize("text, looping", [
    ("I don't know. I don't know. I don't know. I don't know. I don't know. I don't know.", True),
    ("I'm not sure of the exact answer, but I can give you a hint. I can give you a hint. I can give you a hint. "
     "I can give you a hint.", True),
    ("The capital of France is Paris.", False),
    ("Soak the drain with hot water, pour in baking soda, then vinegar, wait ten minutes and flush with hot "
     "water again; a plunger finishes the job.", False),
])
def test_loops_are_told_from_ordinary_answers(text, looping):
    assert loops(text) is looping


@pytest.mark.parametrize("text, expected", [
    ("First. Second sentence and then", "First."),
    ("Is it safe? Yes! It grows", "Is it safe? Yes!"),
    ('He said "stop." Then he', 'He said "stop."'),
    ("It costs 3.5 dollars and", ""),  # a decimal point does not end a sentence
    ("no sentence end", ""),
    ("Done.", "Done."),
])
def test_a_cut_off_reply_goes_back_to_its_last_full_sentence(text, expected):
    assert last_full_sentence(text) == expected
