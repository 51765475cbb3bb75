module github.com/audit-log/audit-log/sdk/go

go 1.26

require github.com/gowebpki/jcs v1.0.2
