"""Music generation: a token-level LSTM language model of folk tunes in ABC notation."""
