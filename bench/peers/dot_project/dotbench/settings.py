"""Django settings for the django-oauth-toolkit peer: `startproject` defaults plus DOT.

OAUTH2_PROVIDER is left unset, so DOT runs with its default settings: opaque tokens
stored in the database and client secrets hashed with Django's default hasher.
Env: BENCH_DB (a SQLite file path, or a PostgreSQL database name), BENCH_DB_ENGINE
(sqlite|postgres).
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "bench-only-not-secret-" + "x" * 40)
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oauth2_provider",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "dotbench.urls"
WSGI_APPLICATION = "dotbench.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict:
    if os.environ.get("BENCH_DB_ENGINE", "sqlite") == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["BENCH_DB"],
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
        }
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["BENCH_DB"]}


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
STATIC_URL = "static/"

# Server errors go to stderr (the run's server.log) so failed answers can be explained.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "ERROR"}},
}
