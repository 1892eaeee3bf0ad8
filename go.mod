module github.com/outboxindexer/outboxindexer

go 1.24

require (
	github.com/asg017/sqlite-vec-go-bindings v0.1.6
	github.com/ncruces/go-sqlite3 v0.21.3
	github.com/ncruces/go-sqlite3/gormlite v0.21.0
	github.com/stretchr/testify v1.12.1
	github.com/tetratelabs/wazero v1.8.2
	gorm.io/gorm v1.31.2
)

require (
	github.com/jinzhu/inflection v1.0.0 // indirect
	github.com/jinzhu/now v1.1.5 // indirect
	github.com/ncruces/julianday v1.0.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/sys v0.28.0 // indirect
	golang.org/x/text v0.21.0 // indirect
)
