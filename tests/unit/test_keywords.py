import re
import unicodedata

import pytest
from hypothesis import given, strategies as st

from service.keywords import changes_consent, classify, keyword, normalise


@pytest.mark.parametrize("body", ["STOP", "stop", " Stop. ", "STOPALL", "unsubscribe", "Cancel!", "end", "QUIT"])
def test_opt_out_words(body):
    assert classify(body, opted_out=False) == "opt_out"
    assert classify(body, opted_out=True) == "opt_out"


@pytest.mark.parametrize("body", ["stop texting me", "don't stop", "the end of the week", "quitting"])
def test_opt_out_words_inside_a_sentence_are_not_opt_outs(body):
    assert classify(body, opted_out=False) is None


def test_yes_opts_in_only_an_opted_out_member():
    assert classify("yes", opted_out=True) == "opt_in"
    assert classify("yes", opted_out=False) is None
    assert classify("START", opted_out=False) == "opt_in"
    assert classify("unstop", opted_out=True) == "opt_in"


@pytest.mark.parametrize("body", ["HELP", "help?", "Info"])
def test_help_words(body):
    assert classify(body, opted_out=False) == "help"


@pytest.mark.parametrize("body", ["STOP", " stopall ", "Cancel!", "START", "unstop", "yes", "HELP", "hello",
                                  "stop texting me", "", "yes please"])
def test_changes_consent_holds_for_every_word_that_opts_anyone_in_or_out(body):
    # inbound.py locks every membership of the phone first when this says so; YES from a member who
    # opted out is the one word it learns of later (and takes the locks again for).
    consent = {"opt_out", "opt_in"}
    always = {classify(body, opted_out=False)} & consent
    only_once_opted_out = ({classify(body, opted_out=True)} & consent) - always
    assert changes_consent(body) == bool(always)
    assert bool(only_once_opted_out) == (keyword(body) == "YES")


@given(st.text(alphabet=st.sampled_from("sStToOpP!?.,_ \u00a0\u200b\u3000é9²🙂-'\n"), max_size=12))
def test_normalise_strips_what_is_not_a_letter_or_digit_from_each_end(body):
    # What it must agree with, on the text read as NFKC; the pattern itself takes time quadratic in
    # a run of punctuation.
    assert normalise(body) == re.sub(r"^[\W_]+|[\W_]+$", "", unicodedata.normalize("NFKC", body)).upper()


@pytest.mark.parametrize("body, word", [("", ""), ("!!!", ""), ("_stop_", "STOP"), ("¡Stop!", "STOP"),
                                        ("\u3000STOP\u200b", "STOP"), ("s", "S"), ("a!" * 3 + "a", "A!A!A!A")])
def test_normalise_examples(body, word):
    assert normalise(body) == word


@pytest.mark.parametrize("body", ["ＳＴＯＰ", "Ｓｔｏｐ", "ｓｔｏｐ！", " ＳＴＯＰ "])
def test_a_stop_typed_in_full_width_letters_opts_out(body):
    """A phone in a full-width input mode sends these: the member asked to stop all the same."""
    assert classify(body, opted_out=False) == "opt_out"
    assert changes_consent(body)


@pytest.mark.parametrize("body, opted_out, word", [
    ("Stop please", False, "opt_out"), ("please STOP", False, "opt_out"), ("Stop, thanks x", False, "opt_out"),
    ("STOP pls!", False, "opt_out"), ("stop thank you", False, "opt_out"), ("Stop\u00a0please", False, "opt_out"),
    ("Ｓｔｏｐ　ｐｌｅａｓｅ", False, "opt_out"), ("Unsubscribe please.", False, "opt_out"),
    ("stop all", False, "opt_out"), ("Opt out", False, "opt_out"), ("opt-out please", False, "opt_out"),
    ("Start please", True, "opt_in"), ("yes please", True, "opt_in"), ("Help please", False, "help"),
    ("yes please", False, None), ("please don't stop", False, None), ("stop it please", False, None),
    ("thanks", False, None), ("please", False, None), ("x", False, None), ("stop texting me thanks", False, None),
])
def test_a_keyword_with_a_please_or_thanks_around_it_is_that_keyword(body, opted_out, word):
    """A member who writes "Stop please" has asked to stop: the courtesy does not hide the word."""
    assert classify(body, opted_out=opted_out) == word
    assert changes_consent(body) == (word in ("opt_out", "opt_in") and classify(body, opted_out=False) == word)


@pytest.mark.parametrize("body", ["Cancel please", "please cancel", "End thanks", "Quit x", "cancel, thank you"])
def test_an_everyday_opt_out_word_with_a_courtesy_is_left_to_the_flows(body):
    """CANCEL, END and QUIT alone opt out, as the carrier's rules have it; with a please or a thanks
    they more often answer a question (a meeting cancelled, a flow ended) than ask to hear nothing
    more, and the carrier, which reads only the bare word, goes on delivering."""
    assert classify(body, opted_out=False) is None
    assert not changes_consent(body)
