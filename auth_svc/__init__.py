"""auth_svc: accounts, token issuing and server-side logout."""
