import pytest

from channels_app.providers.email import sns_signature
from tests.channels_app.sns_signing import aws_certificate_host


@pytest.fixture(autouse=True)
def aws_sns_certificates(monkeypatch):
    """AWS's SNS certificate host, played by the tests (the only remote the SES webhook calls), and no certificate
    remembered from another test."""
    monkeypatch.setattr(sns_signature, "sns_certificate_transport", aws_certificate_host)
    sns_signature.sns_certificates_forget()
    yield
    sns_signature.sns_certificates_forget()
