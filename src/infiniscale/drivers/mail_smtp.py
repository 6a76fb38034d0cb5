"""Mailer over SMTP (plain, STARTTLS or TLS from the start), one connection per message."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, formatdate, make_msgid, parseaddr

# NOTIFICATIONS_SMTP_AUTHENTICATION -> smtplib's method for that mechanism (auto: the best offered)
MECHANISMS = {"plain": "auth_plain", "login": "auth_login", "crammd5": "auth_cram_md5"}
AUTH_NAMES = {"plain": "PLAIN", "login": "LOGIN", "crammd5": "CRAM-MD5"}


class SmtpMailer:
    def __init__(self, host: str, port: int, sender: str, *, username: str = "", password: str = "",
                 authentication: str = "auto", encryption: str = "none", insecure: bool = False,
                 timeout: float = 30.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username = username or parseaddr(sender)[1]
        self.password = password
        self.authentication, self.encryption, self.timeout = authentication, encryption, timeout
        self.context = ssl.create_default_context()
        if insecure:
            self.context.check_hostname = False
            self.context.verify_mode = ssl.CERT_NONE

    def message(self, to: str, subject: str, body: str, on_behalf_of: str = "") -> EmailMessage:
        message = EmailMessage()
        name, address = parseaddr(self.sender)
        if on_behalf_of:
            name = f"{on_behalf_of} via {name or address}"
        message["From"] = formataddr((name, address))
        message["To"], message["Subject"] = to, subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=address.rpartition("@")[2] or "infiniscale")
        message.set_content(body)
        return message

    def send(self, to: str, subject: str, body: str, on_behalf_of: str = "") -> None:
        message = self.message(to, subject, body, on_behalf_of)
        try:
            if self.encryption == "ssltls":
                server: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                        context=self.context)
            else:
                server = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with server:
                if self.encryption == "starttls":
                    server.starttls(context=self.context)
                self._login(server)
                server.send_message(message)
        except smtplib.SMTPException as exc:
            raise OSError(str(exc)) from exc

    def _login(self, server: smtplib.SMTP) -> None:
        if self.authentication == "none" or not self.password:
            return
        if self.authentication == "auto":
            server.login(self.username, self.password)
            return
        server.ehlo_or_helo_if_needed()
        server.user, server.password = self.username, self.password
        server.auth(AUTH_NAMES[self.authentication], getattr(server, MECHANISMS[self.authentication]))
