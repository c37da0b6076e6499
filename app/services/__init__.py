"""The work behind the routes, one concept per module: routes parse (app/deps.py), call these, answer."""
