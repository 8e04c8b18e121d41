from service.sms import measure


def test_gsm7_single_and_multipart():
    assert measure("a" * 160).segments == 1
    assert measure("a" * 161).segments == 2
    assert measure("a" * 306).segments == 2
    assert measure("a" * 307).segments == 3
    assert measure("£ and é are GSM-7").encoding == "GSM-7"


def test_extended_characters_count_twice():
    assert measure("€" * 80).segments == 1
    assert measure("€" * 81).segments == 2


def test_one_curly_quote_makes_it_ucs2():
    text = "It’s " + "a" * 66
    m = measure(text)
    assert m.encoding == "UCS-2" and m.segments == 2
    assert measure("It's " + "a" * 66).segments == 1


def test_emoji_take_two_units():
    assert measure("🙂" * 35).segments == 1
    assert measure("🙂" * 36).segments == 2
