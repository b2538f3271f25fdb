from django.test import Client

from tests.factories import AgentFactory, UserFactory


def test_console_pages_send_anonymous_visitors_to_the_login_page(db):
    response = Client().get("/console/")

    assert response.status_code == 302
    assert response["Location"].startswith("/console/login/?next=/console/")


def test_an_agent_signs_in_with_a_password_and_lands_in_the_console(db):
    agent = AgentFactory()
    agent.set_password("correct horse battery staple")
    agent.save()
    client = Client(enforce_csrf_checks=True)
    page = client.get("/console/login/")
    token = page.cookies["csrftoken"].value

    response = client.post(
        "/console/login/",
        {"username": agent.username, "password": "correct horse battery staple", "csrfmiddlewaretoken": token},
    )

    assert response.status_code == 302
    assert response["Location"] == "/console/"


def test_a_wrong_password_is_refused_with_the_error_on_the_page(db):
    agent = AgentFactory()
    client = Client()

    response = client.post("/console/login/", {"username": agent.username, "password": "wrong"})

    assert response.status_code == 200
    assert b"Please enter a correct username and password" in response.content


def test_login_without_the_csrf_token_is_refused(db):
    agent = AgentFactory()
    agent.set_password("pw-123456789")
    agent.save()

    response = Client(enforce_csrf_checks=True).post(
        "/console/login/", {"username": agent.username, "password": "pw-123456789"}
    )

    assert response.status_code == 403


def test_a_signed_in_user_who_is_no_agent_gets_403_not_a_login_loop(db):
    client = Client()
    client.force_login(UserFactory())

    response = client.get("/console/")

    assert response.status_code == 403
