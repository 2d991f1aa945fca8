"""Webhook connector: verified pushes from SaaS systems (Standard Webhooks, Stripe, Shopify,
or any HMAC-signed body)."""
