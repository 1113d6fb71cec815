from clawstats.cli import main

raise SystemExit(main())
