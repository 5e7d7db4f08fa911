"""Notifications: creators told once that pledges wait for them, givers told when someone they
pledged to joins; recorded in an outbox in the transaction that causes them, sent by a job."""
