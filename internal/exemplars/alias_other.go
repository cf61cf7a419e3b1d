//go:build slicelabels || dedupelabels

package exemplars

// aliasLabels is false for label builds that keep the strings they are given.
const aliasLabels = false
