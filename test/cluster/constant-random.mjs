// Preloaded into the test's child processes (NODE_OPTIONS=--import): the built test model's random
// weights fail every window's fallback thresholds at temperature 0, so decoding ends up sampling; a
// constant source makes sampling a function of the logits alone, so two processes decode the same
// audio alike and a resumed run can be compared with an uninterrupted one.
Math.random = () => 0.5;
