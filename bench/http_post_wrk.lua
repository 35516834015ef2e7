-- wrk script for bench/http_post.sh: POST one JSON record, the same shape
-- and size as the records keyonce and the Python client send.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"id":"4711","name":"Åse Ærø","department":"KØKKEN",' ..
           '"from_date":"2026-11-02","hours":"7,5","cause":"Sygdom"}'
