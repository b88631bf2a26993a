from app.cli import main
from app.cli.launch import leave

leave(main())
