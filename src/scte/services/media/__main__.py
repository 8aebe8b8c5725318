from scte.services.media.service import main

main()
