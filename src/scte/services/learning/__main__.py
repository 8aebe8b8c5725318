from scte.services.learning.service import main

main()
