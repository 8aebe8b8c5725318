"""How `scte up` keeps its children and its data in hand: children that die with it (`launch`), one
instance per data directory that `scte down` can find and stop (`instance`), and a data directory
only its owner can read, with no secret from the environment written into it (`datadir`)."""
