-- bench only: the yardstick with one round trip (bench/hello.py, GET /bench/hello-redis)
return "world"
