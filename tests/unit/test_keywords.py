import pytest

from service.keywords import classify, may_change_consent


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
def test_may_change_consent_holds_for_every_word_classify_reads_as_consent(body):
    # inbound.py locks every membership of the phone first when this says so; it must never miss one.
    could = {classify(body, opted_out=flag) for flag in (False, True)} & {"opt_out", "opt_in"}
    assert may_change_consent(body) == bool(could)
