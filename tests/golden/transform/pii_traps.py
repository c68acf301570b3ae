"""Deployment settings (test fixture for PII redaction)."""

import os

__version__ = "1.2.3.4"
VERSION = (2, 0, 1)
AssemblyVersion = "10.0.19041.1"
RELEASE = "v1.2.3.4"
OID = "1.3.6.1.4.1.311"

# private / reserved / documentation addresses stay
LOCAL_HOSTS = ["127.0.0.1", "10.0.0.12", "192.168.1.20", "172.16.5.4", "0.0.0.0", "169.254.1.1"]
DOC_HOSTS = ["192.0.2.10", "198.51.100.7", "203.0.113.99", "::1", "fe80::1ff:fe23:4567:890a"]
DNS = "8.8.8.8"

# public addresses are redacted
PRIMARY_DB = "52.14.203.77"
BACKUP_DB_V6 = "2a03:2880:f12f:83:face:b00c:0:25de"

db_password = os.environ["DB_PASSWORD"]
password = getpass.getpass()
empty_password = ""
admin_password: str = None
smtp_password = "S3cr3t!pass"
DATABASE_URL = "postgres://app_user:Tr0ub4dor3@db.internal.corp:5432/app"

CONTACT = "Reach me at john.doe@acme-widgets.com for access."
DOCS_CONTACT = "someone@example.com"

AWS_ACCESS_KEY_ID = "AKIAZ7VQ4J2KX3PLM8QR"
AWS_EXAMPLE_KEY = "AKIAIOSFODNN7EXAMPLE"
aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8d9Hk2Lm"
SESSION_TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"

SIGNING_KEY = """-----BEGIN RSA PRIVATE KEY-----
MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu
KUpRKfFLfRYC9AIKjbJTWit+CqvjWYzvQwECAwEAAQJAIJLixBy2qpFoS4DSmoEm
-----END RSA PRIVATE KEY-----"""
