"""The Celery adapter: the beat tick and the send task. All logic lives in `engine`."""
