// Command projector runs the projector service of the dataset pipeline; the README lists
// its configuration (the same environment for every service).
package main

import "github.com/dspipe/dspipe/internal/app"

func main() { app.Main(app.ServiceProjector) }
