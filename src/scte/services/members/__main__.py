"""`python -m scte.services.members`."""

from scte.services.members.service import main

main()
