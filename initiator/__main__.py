from initiator.cli import main

raise SystemExit(main())
