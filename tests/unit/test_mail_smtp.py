"""The SMTP mailer against a real SMTP server (aiosmtpd on a loopback port): each login mechanism
oCIS offers, a refused password and an unreachable server as OSError, the sender shown on behalf
of the one who acted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from infiniscale.drivers.mail_smtp import SmtpMailer
from tests.conftest import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd calls this hook by name
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"mailer" and auth_data.password == b"right"
        if ok:
            inbox.logins.append(mechanism)
        # handled=False: aiosmtpd itself answers a refusal with 535
        return AuthResult(success=ok, handled=False)

    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate,
                            auth_require_tls=False)
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.mark.parametrize("mechanism", ["plain", "login", "auto"])
def test_each_login_mechanism_delivers(smtp, mechanism):
    controller, inbox = smtp
    mailer = SmtpMailer("127.0.0.1", controller.port, "Cloud <noreply@example.org>", username="mailer",
                        password="right", authentication=mechanism)
    mailer.send("marie@example.org", "Einstein shared 'x' with you", "Hello Marie", on_behalf_of="Einstein")
    [(sender, recipients, content)] = inbox.messages
    assert sender == "noreply@example.org" and recipients == ["marie@example.org"]
    assert b"From: Einstein via Cloud <noreply@example.org>" in content
    assert inbox.logins == [{"plain": "PLAIN", "login": "LOGIN"}.get(mechanism, inbox.logins[0])]


def test_a_wrong_password_and_a_missing_server_are_oserrors(smtp):
    controller, inbox = smtp
    with pytest.raises(OSError):
        SmtpMailer("127.0.0.1", controller.port, "noreply@example.org", username="mailer", password="wrong",
                   authentication="plain").send("marie@example.org", "s", "b")
    with pytest.raises(OSError):
        SmtpMailer("127.0.0.1", free_port(), "noreply@example.org", timeout=2).send("marie@example.org", "s", "b")
    assert inbox.messages == []


def test_without_credentials_nothing_logs_in(smtp):
    controller, inbox = smtp
    SmtpMailer("127.0.0.1", controller.port, "noreply@example.org", authentication="none").send(
        "richard@example.org", "s", "b")
    assert len(inbox.messages) == 1 and inbox.logins == []
