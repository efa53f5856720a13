FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libpq5 && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Collecting files signs nothing; the running containers get their key from the environment.
RUN DJANGO_SETTINGS_MODULE=psyplatform.settings SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput

EXPOSE 8000
# gunicorn.conf.py: gthread, a process per core x 8 threads, on 0.0.0.0:8000 (README, "Serving participants").
CMD ["gunicorn", "psyplatform.wsgi"]
