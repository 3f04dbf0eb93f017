// Package migrations embeds the SQL migrations applied by golang-migrate at
// start-up; file names follow 000001_name.up.sql / .down.sql.
package migrations

import "embed"

// FS holds every migration file.
//
//go:embed *.sql
var FS embed.FS
