from infiniscale.cli import main

raise SystemExit(main())
