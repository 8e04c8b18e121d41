import pytest

from service.directory import add_member, create_community


@pytest.fixture
def community(session):
    community = create_community(session, "Oak House", "Europe/London", phone_number="+441632960000")
    session.commit()
    return community


@pytest.fixture
def member(session, community):
    member = add_member(session, community, "Alex", "07700 900123", welcome=False)
    session.commit()
    return member
