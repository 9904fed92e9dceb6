"""Config rules, one module per resource family; `diagnose.rules.ALL_RULES` lists them."""
