"""The rules of the meter, independent of HTTP: sites and policies, accounts, tokens and passwords, the meter."""
