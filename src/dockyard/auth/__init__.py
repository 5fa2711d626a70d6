"""API access control: OAuth2 client-credentials tokens, scopes and a create-body policy.

The daemon issues and verifies the tokens itself (clients file, signing key, revocations) and also accepts an
external issuer's tokens verified offline against its JWKS; see docs/auth.md.
"""
