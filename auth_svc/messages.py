"""What auth_svc tells its users, in the original service's words (docs/api.md, "v1 messages").

Clients of the original match on these texts, so they are kept verbatim, typos included
("onlu", "is already exists", "successfully logout"): do not correct them. Rules the original
did not have get texts in the same style. Machine clients should match the ErrorInfo reason
instead; it never changes with the wording.
"""

REGISTERED = "You have been successfully registered!"
LOGIN_TAKEN = "A user with this login is already exists"

LOGIN_TOO_SHORT = "Incorrect login: the length should be no less than 2 symbols"
LOGIN_TOO_LONG = "Incorrect login: the length should be no more than 64 symbols"
LOGIN_CHARACTERS = "Incorrect login: login should have onlu lower-upper latin letters and digits"

PASSWORD_TOO_SHORT = "Incorrect password: the length should be no less than 8 symbols"
PASSWORD_TOO_LONG = "Incorrect password: the length should be no more than 64 symbols"
# One text per missing class, in the original's names for them.
PASSWORD_LACKS = "Incorrect password: the password should have at least one {}"
PASSWORD_CONTROL = "Incorrect password: the password should not have control characters"

# The original said "initial" for both name and surname; the field's name follows.
INITIAL_TOO_SHORT = "Incorrect initial: the length should be no less than 2 symbols"
INITIAL_TOO_LONG = "Incorrect initial: the length should be no more than 32 symbols"
INITIAL_CHARACTERS = "Incorrect initial: initial should have only lower-upper latin letters"

AUTHENTICATED = "You have been successfully authenticated"
# One answer for "no such login" and "wrong password": which one it was is exactly what
# someone guessing logins wants to learn.
WRONG_CREDENTIALS = "You have entered an incorrect login or password"

LOGGED_OUT = "You have been successfully logout from your account! The token has been revoked."
# Said before the reason whenever a token is refused by auth_svc (Logout, and the account calls).
NOT_AUTHORIZED = "You have not been authorized!"

# Account calls (docs/api.md, "v2 accounts"): the product's own texts, in the same style.
PASSWORD_CHANGED = "Your password has been changed. Every earlier token has been revoked: log in again."
LOGGED_OUT_EVERYWHERE = "You have been logged out everywhere! Every token of your account has been revoked."
ACCOUNT_DELETED = "Your account has been deleted, with your namespace and its {pairs} pairs."
WRONG_PASSWORD = "You have entered an incorrect password"
