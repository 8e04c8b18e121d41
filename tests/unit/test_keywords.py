import pytest

from service.keywords import classify


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
