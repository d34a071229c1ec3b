"""Carbon accounting: factors, scopes, standard coal, indicators, targets."""
