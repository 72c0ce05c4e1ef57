"""What a data set asks of a model. Kept free of torch so the config path loads fast."""

NEXT_TOKEN = "next_token"  # predict token t+1 at every step t (many-to-many)
CLASSIFY = "classify"  # one label per sequence (many-to-one)
TASKS = (NEXT_TOKEN, CLASSIFY)
