just some text, not an index
