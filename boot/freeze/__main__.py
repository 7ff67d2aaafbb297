from boot.freeze.cli import main

raise SystemExit(main())
