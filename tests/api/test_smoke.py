async def test_health_reports_database_and_bus(admin):
    response = await admin.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["bus"] == "ok"
