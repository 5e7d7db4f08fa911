"""The catalog of things people flattr with the Flattr button or an auto-submit URL: their
details (description, category, language, tags, hidden), search and top lists, flattring from
the button, and discovery of a page's owner from its `rel="payment"` link. No HTTP serving
here: the pages (hub/web/things.py) and the REST API call these functions."""
