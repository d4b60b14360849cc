"""Leadership greetings (慰问): one leader to every duty room in scope at once, the receipts of
which rooms watched and for how long, and the reply floor (a room brought up to talk back)."""
