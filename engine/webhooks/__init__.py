"""Event webhooks: an office's systems (a CMS, a WhatsApp gateway, the regency's dashboards)
are told when something happens to the office's SOPs.

- `events`: which audit rows are events, their JSON, and the statement that records one
  delivery per matching subscription in the audit row's own transaction (engine/uow.py);
- `subscriptions`: an office administrator's subscriptions (URL, events, secret, active),
  the delivery log and "send again";
- `secrets`: the signing secret, generated, shown once, kept encrypted;
- `signing`: the Standard Webhooks signature (`webhook-id`, `webhook-timestamp`,
  `webhook-signature`);
- `transport`: the HTTP POST, with the address checked at send time.

Sending goes through the one outbox (engine/outbox.py), as reminders do: leases, attempt
fencing, retries with backoff, at-least-once.
"""
