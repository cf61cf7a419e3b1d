//go:build !slicelabels && !dedupelabels

package exemplars

// aliasLabels is true when labels.ScratchBuilder.Labels copies the strings
// it was given (the default stringlabels build), so decoding may pass it
// strings that alias Pebble's buffers.
const aliasLabels = true
